// Serving benchmark for `tpinfer serve` (or any OpenAI-compatible server),
// with vLLM benchmark_serving's metrics: for each number of concurrent
// clients, aggregate output tokens/s, time to first token (TTFT) and
// inter-token latency (ITL, the gap between streamed chunks) at p50 and p99.
// Prompts are token ids of a fixed length and every request generates
// exactly --output tokens (ignore_eos), so runs compare like for like.
// usage: node bench/serve_bench.mjs URL [--clients 1,4,16,32] [--prompt 128]
//        [--output 64] [--requests-per-client 4] [--vocab 512]
const args = process.argv.slice(2);
const url = args[0];
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i > 0 ? args[i + 1] : def;
};
if (!url) {
  console.error('usage: node serve_bench.mjs URL [--clients 1,4,16,32] [--prompt 128] [--output 64] [--requests-per-client 4] [--vocab 512]');
  process.exit(2);
}
const clients = opt('clients', '1,4,16,32').split(',').map(Number);
const promptLen = Number(opt('prompt', 128));
const outputLen = Number(opt('output', 64));
const perClient = Number(opt('requests-per-client', 4));
const vocab = Number(opt('vocab', 512));

let seed = 1;
const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
// Ids from 3 up, away from the usual special tokens.
const prompt = () => Array.from({ length: promptLen }, () => 3 + Math.floor(rand() * (vocab - 3)));

async function one() {
  const t0 = performance.now();
  const r = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: prompt(), max_tokens: outputLen, ignore_eos: true, temperature: 0, stream: true,
                           stream_options: { include_usage: true } }),
  });
  if (r.status !== 200) throw new Error(`status ${r.status}: ${await r.text()}`);
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = '', ttft = 0, last = 0, tokens = 0;
  const itl = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let at;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, at);
      buf = buf.slice(at + 2);
      if (!ev.startsWith('data: {')) continue;
      const j = JSON.parse(ev.slice(6));
      if (j.usage) tokens = j.usage.completion_tokens;
      if (!j.choices.length || !j.choices[0].text) continue;
      const now = performance.now();
      if (!ttft) ttft = now - t0;
      else itl.push(now - last);
      last = now;
    }
  }
  return { ttft, itl, tokens };
}

// tpinfer's /metrics: rank 0's step counters, to break a decode step's time
// into its phases over each run (other servers: no breakdown).
async function steps() {
  try {
    const r = await fetch(`${url}/metrics`);
    if (r.status !== 200) return null;
    const m = {};
    for (const line of (await r.text()).split('\n')) {
      const k = line.match(/^tpinfer_step(s|_tokens|_seconds)_total\{kind="decode"(?:,phase="(\w+)")?\} (\S+)$/);
      if (k) m[k[2] || (k[1] === 's' ? 'steps' : 'tokens')] = Number(k[3]);
    }
    return 'steps' in m ? m : null;
  } catch {
    return null;
  }
}
const phases = ['plan', 'share', 'forward', 'sample'];
const breakdown = [];

const pct = (xs, p) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

console.log(`prompt ${promptLen} tokens, output ${outputLen} tokens, ${perClient} requests per client`);
// output_tok_per_s counts every token over the whole run, prompts' prefill
// included; decode_tok_per_s is the batch's decode rate alone: each of the c
// streams yields a token per median inter-token gap, one decode step. (The
// mean gap is no measure of it: a stream that decodes while later requests'
// prompts are prefilled waits a whole prefill step, seconds, for one token.)
console.log('clients,requests,output_tok_per_s,decode_tok_per_s,ttft_p50_ms,ttft_p99_ms,itl_p50_ms,itl_p99_ms');
await one(); // warm up
for (const c of clients) {
  const m0 = await steps();
  const t0 = performance.now();
  const results = (await Promise.all(Array.from({ length: c }, async () => {
    const mine = [];
    for (let i = 0; i < perClient; i++) mine.push(await one());
    return mine;
  }))).flat();
  const secs = (performance.now() - t0) / 1000;
  const tokens = results.reduce((a, r) => a + r.tokens, 0);
  const ttft = results.map((r) => r.ttft), itl = results.flatMap((r) => r.itl);
  console.log([c, results.length, (tokens / secs).toFixed(1), ((c * 1000) / pct(itl, 50)).toFixed(1),
               pct(ttft, 50).toFixed(1), pct(ttft, 99).toFixed(1),
               pct(itl, 50).toFixed(2), pct(itl, 99).toFixed(2)].join(','));
  const m1 = await steps();
  if (m0 && m1 && m1.steps > m0.steps) {
    const n = m1.steps - m0.steps, ms = (k) => ((1000 * (m1[k] - m0[k])) / n).toFixed(2);
    const total = phases.reduce((a, k) => a + (m1[k] - m0[k]), 0);
    breakdown.push([c, n, ((m1.tokens - m0.tokens) / n).toFixed(1), ...phases.map(ms), ((1000 * total) / n).toFixed(2),
                    ((m1.tokens - m0.tokens) / total).toFixed(1)].join(','));
  }
}
if (breakdown.length) {
  // rank 0's decode-only steps (every running sequence one token): the mean
  // ms of each phase, and the decode rate they give (tokens / step time).
  console.log('clients,decode_steps,rows_per_step,plan_ms,share_ms,forward_ms,sample_ms,step_ms,step_decode_tok_per_s');
  for (const line of breakdown) console.log(line);
}
