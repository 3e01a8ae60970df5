// tpinfer serve end to end (docs/SERVING.md): the official OpenAI client,
// raw SSE framing with curl, concurrency, disconnects, prompt reuse,
// malformed requests and SIGTERM, at 1 or more ranks.
// usage: node e2e.mjs TPINFER RANKS SHARED_DIR WORK_DIR
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import OpenAI from 'openai';

const [tpinfer, ranksArg, shared, work] = process.argv.slice(2);
const storiesDir = path.join(shared, 'models', 'stories260K-hf');
const ranks = Number(ranksArg);
let failed = 0;

function check(cond, what, detail = '') {
  if (cond) console.log(`ok - ${what}`);
  else {
    failed++;
    console.log(`FAIL - ${what} ${detail}`);
  }
}

// Starts `tpinfer [-n R] serve` and resolves once it names its port and pid.
function startServer(name, args) {
  const argv = ranks > 1 ? ['-n', String(ranks), 'serve', ...args] : ['serve', ...args];
  const proc = spawn(tpinfer, [...argv, '--port', '0'], { env: { ...process.env, OMP_NUM_THREADS: '1' } });
  let log = '';
  const exited = new Promise((res) => proc.on('exit', (code, sig) => res({ code, sig })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: no "listening on" line:\n${log}`)), 60000);
    const onData = (d) => {
      log += d;
      const m = log.match(/listening on http:\/\/[^:]+:(\d+) .*pid (\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ name, proc, port: Number(m[1]), pid: Number(m[2]), url: `http://127.0.0.1:${m[1]}`, exited,
                  log: () => log });
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', () => reject(new Error(`${name} exited:\n${log}`)));
  });
}

async function post(url, body, headers = {}) {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers },
                               body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: r.status, headers: r.headers, json: await r.json().catch(() => null) };
}

async function metrics(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const get = (name) => Number((text.match(new RegExp(`^${name} (\\S+)$`, 'm')) || [])[1]);
  return { text, get };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- completions on stories260K ----
async function completions(srv) {
  const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'none' });
  const models = await client.models.list();
  check(models.data.length === 1 && models.data[0].id === 'stories260K-hf', 'openai: models.list names the model');

  const base = { model: 'stories260K-hf', prompt: 'Once upon a time', max_tokens: 24, temperature: 0 };
  const whole = await client.completions.create(base);
  check(whole.object === 'text_completion' && whole.choices[0].finish_reason === 'length' &&
        whole.usage.completion_tokens === 24 && whole.usage.total_tokens === whole.usage.prompt_tokens + 24,
        'openai: completion with usage and finish_reason length', JSON.stringify(whole));
  check(whole.choices[0].text.startsWith(', there was a little girl named Lily'),
        'openai: greedy completion is the reference text', JSON.stringify(whole.choices[0].text));
  let streamed = '', last = null, chunks = 0;
  const stream = await client.completions.create({ ...base, stream: true, stream_options: { include_usage: true } });
  for await (const c of stream) {
    chunks++;
    if (c.choices.length) streamed += c.choices[0].text;
    last = c;
  }
  check(streamed === whole.choices[0].text, 'openai: streamed completion equals the whole one');
  check(chunks >= 3 && last.usage && last.usage.completion_tokens === 24 && last.choices.length === 0,
        'openai: include_usage puts usage in the last chunk', JSON.stringify(last));

  const stop = await client.completions.create({ ...base, stop: [' girl'] });
  check(stop.choices[0].finish_reason === 'stop' && stop.choices[0].text === ', there was a little',
        'stop string ends the text before it', JSON.stringify(stop.choices[0]));
  const lp = await post(`${srv.url}/v1/completions`, { ...base, max_tokens: 3, logprobs: 2 });
  const l = lp.json && lp.json.choices[0].logprobs;
  check(lp.status === 200 && l && l.tokens.length === 3 && l.token_logprobs.every((x) => x <= 0) &&
        l.top_logprobs.every((t) => Object.keys(t).length >= 1), 'legacy logprobs: tokens, logprobs, top 2',
        JSON.stringify(lp.json));
  return whole.choices[0].text;
}

// ---- raw SSE framing with curl ----
function curlFraming(srv) {
  const r = spawnSync('curl', ['-sN', `${srv.url}/v1/completions`, '-H', 'content-type: application/json', '-d',
                               JSON.stringify({ prompt: 'Once upon a time', max_tokens: 5, temperature: 0, stream: true })],
                      { encoding: 'utf8' });
  const out = r.stdout;
  const events = out.split('\n\n');
  const tail = events.pop();
  const json = events.slice(0, -1);
  check(tail === '' && json.length >= 2 && json.every((e) => /^data: \{.*\}$/.test(e)) &&
        events[events.length - 1] === 'data: [DONE]',
        'curl: SSE events are "data: {json}" and a blank line, ending in data: [DONE]', JSON.stringify(out));
  const text = json.map((e) => JSON.parse(e.slice(6)).choices[0].text).join('');
  check(text === ', there was a little', 'curl: the chunks\' texts make the greedy text (tokens may share a chunk)', text);
  const fin = JSON.parse(json[json.length - 1].slice(6));
  check(fin.choices[0].finish_reason === 'length', 'curl: the last chunk carries finish_reason');
}

// ---- 16 concurrent greedy requests equal the same requests alone ----
async function concurrent(srv) {
  const reqs = [];
  const prompts = ['Once upon a time', 'The cat', 'Lily and Tom went to the park', 'One day, a little bird',
                   'Tim had a red ball', 'The sun was', 'A big dog', 'Mom said'];
  for (let i = 0; i < 16; i++)
    reqs.push({ prompt: prompts[i % prompts.length] + (i >= 8 ? ' and' : ''), max_tokens: 8 + 7 * i, temperature: 0 });
  const alone = [];
  for (const r of reqs) alone.push((await post(`${srv.url}/v1/completions`, r)).json.choices[0].text);
  const together = await Promise.all(reqs.map((r) => post(`${srv.url}/v1/completions`, r)));
  const same = together.filter((t, i) => t.status === 200 && t.json.choices[0].text === alone[i]).length;
  check(same === 16, '16 concurrent greedy requests each give the text they give alone', `${same}/16 equal`);
}

// A streamed request read chunk by chunk over a raw socket.
function rawStream(srv, body) {
  const sock = net.connect(srv.port, '127.0.0.1');
  const s = JSON.stringify(body);
  sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(s)}\r\n\r\n${s}`);
  return sock;
}

// ---- a short request gets its first token while a long one streams ----
async function firstTokenWhileLong(srv) {
  const sock = rawStream(srv, { prompt: 'Once upon a time', max_tokens: 400, temperature: 0, ignore_eos: true, stream: true });
  let longDone = 0, got = '';
  await new Promise((res) => sock.on('data', (d) => { got += d; if (got.includes('data: {')) res(); }));
  sock.on('data', (d) => { got += d; if (got.includes('[DONE]') && !longDone) longDone = performance.now(); });
  const t0 = performance.now();
  const r = await fetch(`${srv.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'The cat', max_tokens: 2, stream: true, temperature: 0 }) });
  const reader = r.body.getReader();
  let first = 0, text = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += Buffer.from(value).toString();
    if (!first && /"text":"[^"]/.test(text)) first = performance.now();
  }
  check(first > 0 && (!longDone || first < longDone), 'a request sent while a long one streams gets its first token before the long one ends',
        `first ${first - t0} ms, long done ${longDone ? longDone - t0 : 'not yet'}`);
  await new Promise((res) => { if (got.includes('[DONE]')) res(); else sock.on('data', () => got.includes('[DONE]') && res()); });
  sock.destroy();
}

// ---- a disconnected client's KV is freed ----
async function disconnect(srv) {
  const m0 = await metrics(srv.url);
  const before = m0.get('tpinfer_http_disconnects_total');
  const cancelled = (m) => Number((m.text.match(/^tpinfer_requests_total\{outcome="cancelled"\} (\S+)$/m) || [])[1]);
  const sock = rawStream(srv, { prompt: 'Once upon a time', max_tokens: 480, temperature: 0, ignore_eos: true, stream: true });
  let n = 0;
  await new Promise((res) => sock.on('data', () => { if (++n === 3) res(); }));
  const during = await metrics(srv.url);
  sock.destroy();
  let after = null;
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    after = await metrics(srv.url);
    if (after.get('tpinfer_kv_positions_used') === 0 && after.get('tpinfer_num_requests_running') === 0) break;
  }
  check(during.get('tpinfer_kv_positions_used') > 0 && after.get('tpinfer_kv_positions_used') === 0 &&
        after.get('tpinfer_num_requests_running') === 0 && after.get('tpinfer_http_disconnects_total') === before + 1 &&
        cancelled(after) === cancelled(m0) + 1,
        'a disconnected stream is cancelled and its KV freed (/metrics)',
        `used during ${during.get('tpinfer_kv_positions_used')}, after ${after.get('tpinfer_kv_positions_used')}, ` +
        `cancelled ${cancelled(m0)} -> ${cancelled(after)}`);
}

// ---- limits and malformed requests ----
async function rawRequest(port, bytes, wait = 10000) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    const done = () => { sock.destroy(); resolve(Number((got.match(/^HTTP\/1\.[01] (\d+)/) || [])[1] || 0)); };
    sock.on('data', (d) => { got += d; if (got.includes('\r\n\r\n')) done(); });
    sock.on('error', done);
    sock.on('close', done);
    setTimeout(done, wait);
    sock.write(bytes);
  });
}

function malformedBodies() {
  const good = { prompt: 'Hi', max_tokens: 2 };
  const list = ['', '{', '[]', 'null', '"x"', '{"prompt": "Hi",}', '{"prompt": "Hi"} x', '{"prompt": "Hi"}{}', '\u0000'];
  const badValues = {
    max_tokens: ['2', -1, 0, 1.5, 1e300, 9007199254740993, true, null === 0, [], {}],
    temperature: ['0.5', -0.1, 2.1, [], true], top_p: [0, 1.01, '1', -1], top_k: [-2, 1.5, '5', 1e20],
    min_p: [-0.1, 1.1, 'x'], presence_penalty: [2.5, -3, '0'], frequency_penalty: [3, 'a'],
    repetition_penalty: [0, -1, 101, '1'], seed: [1.5, '3', 1e30, true], stop: [5, ['a', 'b', 'c', 'd', 'e'], [''], [1], 'x'.repeat(300)],
    n: [2, 0, '1'], stream: ['true', 1], stream_options: [{ include_usage: true }, 'x', { foo: 1 }],
    logprobs: [6, -1, true, '1'], echo: [true, 'x'], best_of: [2], suffix: ['x'], logit_bias: [{ 1: 5 }],
    prompt: [5, [], [[1], [2]], [-1], [100000], [1.5], ['a', 'b'], { a: 1 }, true], user: [5], model: [5],
  };
  for (const [k, vs] of Object.entries(badValues))
    for (const v of vs) list.push(JSON.stringify({ ...good, [k]: v }));
  for (const k of ['foo', 'functions', 'tools', 'messages', 'max_completion_tokens', 'top_logprobs', 'response_format',
                   'Temperature', 'min_tokens', 'guided_json'])
    list.push(JSON.stringify({ ...good, [k]: 1 }));
  list.push(JSON.stringify({ max_tokens: 2 })); // no prompt
  for (const raw of ['1e400', '-1e400', '1e-400x', 'NaN', 'Infinity', '0x10', '1e99999999999'])
    for (const k of ['max_tokens', 'temperature', 'seed', 'top_k'])
      list.push(`{"prompt": "Hi", "${k}": ${raw}}`);
  list.push(JSON.stringify({ ...good, max_tokens: 100000 })); // beyond the context
  list.push(JSON.stringify({ ...good, stream: false, stream_options: { include_usage: true } }));
  const bodies = list.map((s) => Buffer.from(s));
  bodies.push(Buffer.concat([Buffer.from('{"prompt": "'), Buffer.from([0xff, 0xfe, 0xc0, 0x80]), Buffer.from('"}')]));
  bodies.push(Buffer.concat([Buffer.from('{"prompt": "'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]));
  bodies.push(Buffer.from('{"prompt": "\\ud800"}'));
  bodies.push(Buffer.from('{"prompt": "a\\u0000b"}'), Buffer.from('{"prompt": "a\tb"}'), Buffer.from('{"prompt\u0000x": "a"}'));
  const good_s = JSON.stringify(good);
  for (let i = 1; i < good_s.length; i++) bodies.push(Buffer.from(good_s.slice(0, i))); // truncated JSON
  return bodies;
}

const chatBodies = () => [
  {}, { messages: [] }, { messages: 'hi' }, { messages: [{ role: 'user' }] }, { messages: [{ role: 'bot', content: 'x' }] },
  { messages: [{ role: 'user', content: 5 }] }, { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] },
  { messages: [{ role: 'user', content: 'x', tool_calls: [] }] }, { messages: [{ role: 'user', content: 'x' }], logprobs: 3 },
  { messages: [{ role: 'user', content: 'x' }], top_logprobs: 21, logprobs: true },
  { messages: [{ role: 'user', content: 'x' }], top_logprobs: 2 }, { messages: [{ role: 'user', content: 'x' }], tools: [{}] },
  { messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_object' } },
  { messages: [{ role: 'user', content: 'x' }], prompt: 'x' }, { messages: [{ role: 'user', content: 'x' }], n: 3 },
].map((b) => Buffer.from(JSON.stringify(b)));

async function malformed(srv) {
  const bodies = malformedBodies(), chats = chatBodies();
  const jobs = [];
  for (let i = 0; jobs.length < 1000; i++) {
    const chat = i % 4 === 3;
    const b = chat ? chats[i % chats.length] : bodies[i % bodies.length];
    const route = chat ? '/v1/chat/completions' : '/v1/completions';
    jobs.push([route, b]);
  }
  const statuses = [];
  for (let i = 0; i < jobs.length; i += 25) {
    const batch = jobs.slice(i, i + 25).map(([route, b]) => rawRequest(srv.port, Buffer.concat([
      Buffer.from(`POST ${route} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${b.length}\r\nConnection: close\r\n\r\n`), b])));
    statuses.push(...await Promise.all(batch));
  }
  const bad = statuses.map((s, i) => [s, i]).filter(([s]) => s < 400 || s >= 500);
  check(bad.length === 0, `${statuses.length} malformed requests all get a 4xx`,
        bad.slice(0, 5).map(([s, i]) => `${s} for ${jobs[i][0]} ${jobs[i][1].toString().slice(0, 80)}`).join('; '));
  // oversized: by Content-Length, and chunked without one
  const big = Buffer.alloc(1100000, 'a');
  const s413 = await rawRequest(srv.port, Buffer.concat([Buffer.from(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${big.length}\r\n\r\n`), big]));
  const chunked = Buffer.concat([Buffer.from('POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'),
                                 Buffer.from(`${big.length.toString(16)}\r\n`), big, Buffer.from('\r\n0\r\n\r\n')]);
  const c413 = await rawRequest(srv.port, chunked);
  check(s413 === 413 && c413 === 413, 'bodies over 1 MiB get 413 (Content-Length and chunked)', `${s413} ${c413}`);
  // a body that never finishes arriving does not hold the others up
  const slow = net.connect(srv.port, '127.0.0.1');
  slow.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"prompt":');
  const other = await post(`${srv.url}/v1/completions`, { prompt: 'Hi', max_tokens: 2 });
  slow.destroy();
  const h = await fetch(`${srv.url}/health`);
  check(h.status === 200 && other.status === 200, '/health and other requests still answer after the malformed ones');
  const e = await post(`${srv.url}/v1/completions`, { prompt: 'Hi', temperature: '0.5' });
  check(e.status === 400 && e.json.error.param === 'temperature' && /temperature/.test(e.json.error.message) &&
        e.json.error.type === 'invalid_request_error', '400 carries OpenAI\'s error object naming the parameter', JSON.stringify(e.json));
  const ctx = await post(`${srv.url}/v1/completions`, { prompt: 'Hi', max_tokens: 600 });
  check(ctx.status === 400 && /\b600\b/.test(ctx.json.error.message) && /\b512\b/.test(ctx.json.error.message),
        'prompt + max_tokens beyond the context is a 400 giving both numbers', JSON.stringify(ctx.json));
  const u = await post(`${srv.url}/v1/completions`, { prompt: 'Hi', foo: 1 });
  check(u.status === 400 && u.json.error.param === 'foo', 'an unknown parameter is a 400 naming it');
  const nf = await fetch(`${srv.url}/v2/nothing`);
  const na = await fetch(`${srv.url}/v1/completions`);
  check(nf.status === 404 && na.status === 405, 'unknown path 404, wrong method 405');
}

// ---- chat on a make-model model given a real chat template ----
// --timeout 2: a client that sends half its headers and goes quiet is dropped.
async function idleTimeout(srv) {
  const sock = net.connect(srv.port, '127.0.0.1');
  sock.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n');
  const t0 = performance.now();
  const closed = await Promise.race([new Promise((res) => sock.on('close', () => res(true))), sleep(8000).then(() => false)]);
  const secs = (performance.now() - t0) / 1000;
  check(closed && secs >= 1.5 && secs < 6, 'an idle client is dropped after --timeout seconds', `closed ${closed} after ${secs.toFixed(1)} s`);
  sock.destroy();
}

async function chat(srv) {
  const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'sekrit' });
  const noKey = await post(`${srv.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'hi' }] });
  const wrongKey = await post(`${srv.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'hi' }] },
                              { authorization: 'Bearer nope' });
  check(noKey.status === 401 && wrongKey.status === 401 && (await fetch(`${srv.url}/health`)).status === 200,
        '--api-key: /v1 without the key is 401, /health is open');
  const messages = [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Say something.' }];
  const one = await client.chat.completions.create({ model: 'chat-tiny', messages, max_tokens: 12, temperature: 0 });
  check(one.object === 'chat.completion' && one.choices[0].message.role === 'assistant' &&
        one.choices[0].message.content.length > 0 && one.usage.completion_tokens >= 1,
        'openai: chat completion', JSON.stringify(one));
  let streamed = '', role = null, last = null;
  const stream = await client.chat.completions.create({ model: 'chat-tiny', messages, max_tokens: 12, temperature: 0,
                                                        stream: true, stream_options: { include_usage: true } });
  for await (const c of stream) {
    if (c.choices.length && c.choices[0].delta.role) role = c.choices[0].delta.role;
    if (c.choices.length && c.choices[0].delta.content) streamed += c.choices[0].delta.content;
    last = c;
  }
  check(role === 'assistant' && streamed === one.choices[0].message.content && last.usage &&
        last.usage.completion_tokens === one.usage.completion_tokens, 'openai: streamed chat equals the whole one');
  const turn2 = [...messages, { role: 'assistant', content: one.choices[0].message.content }, { role: 'user', content: 'More.' }];
  const two = await client.chat.completions.create({ model: 'chat-tiny', messages: turn2, max_tokens: 4, temperature: 0 });
  const cached = two.usage.prompt_tokens_details && two.usage.prompt_tokens_details.cached_tokens;
  check(cached >= one.usage.prompt_tokens, 'a second chat turn reuses the first turn\'s prompt KV (cached_tokens)',
        `cached ${cached}, first prompt ${one.usage.prompt_tokens}, second prompt ${two.usage.prompt_tokens}`);
  const lp = await client.chat.completions.create({ model: 'chat-tiny', messages, max_tokens: 3, temperature: 0,
                                                    logprobs: true, top_logprobs: 2 });
  const c0 = lp.choices[0].logprobs && lp.choices[0].logprobs.content;
  check(c0 && c0.length === 3 && c0.every((t) => t.logprob <= 0 && t.top_logprobs.length === 2 &&
                                           t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob),
        'chat logprobs with top_logprobs 2', JSON.stringify(lp.choices[0].logprobs));
  // the queue is 1 beyond 1 running sequence: a burst gets 503 with Retry-After
  const burst = await Promise.all(Array.from({ length: 6 }, () => fetch(`${srv.url}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: 'Bearer sekrit' },
    body: JSON.stringify({ messages, max_tokens: 300, ignore_eos: true, temperature: 0 }) })));
  const full = burst.filter((r) => r.status === 503 && r.headers.get('retry-after'));
  check(full.length >= 1 && burst.filter((r) => r.status === 200).length >= 2, 'beyond --queue: 503 with Retry-After',
        burst.map((r) => r.status).join(','));
  await Promise.all(burst.map((r) => r.text()));
}

async function sigterm(srv, during) {
  let stream = null;
  if (during) stream = rawStream(srv, { prompt: 'Once upon a time', max_tokens: 480, ignore_eos: true, stream: true });
  let got = '';
  if (stream) {
    await new Promise((res) => stream.on('data', (d) => { got += d; if (got.includes('data: {')) res(); }));
    stream.on('data', (d) => { got += d; });
  }
  process.kill(srv.proc.pid, 'SIGTERM'); // the server, or with -n the launcher in front of mpirun
  const t0 = performance.now();
  const { code, sig } = await Promise.race([srv.exited, sleep(20000).then(() => ({ code: 'timeout' }))]);
  check(code === 0, `${srv.name}: SIGTERM ends every rank with exit 0`, `code ${code} signal ${sig} after ${performance.now() - t0} ms`);
  if (stream) {
    await sleep(100);
    check(got.includes('data: [DONE]'), `${srv.name}: an open stream is ended (finish_reason, [DONE]) on SIGTERM`);
    stream.destroy();
  }
}

// A template's raise_exception (or, without the Jinja renderer, the
// built-in format's own check) is a 400 carrying its message.
async function chatRefused(srv) {
  const r = await post(`${srv.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }] });
  check(r.status === 400 && /alternate/.test(r.json.error.message), 'chat: roles the template refuses are a 400 with its message',
        `${r.status} ${JSON.stringify(r.json)} (${/the model's template/.test(srv.log()) ? 'template' : 'built-in format'})`);
  const ok = await post(`${srv.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'a' }], max_tokens: 2 });
  check(ok.status === 200 && ok.json.usage.completion_tokens === 2, 'chat: the same template renders a valid conversation');
}

function chatModel(name = 'chat-tiny', template = 'Qwen-Qwen2.5-7B-Instruct.jinja', asFile = false) {
  const dir = path.join(work, name);
  fs.rmSync(dir, { recursive: true, force: true });
  const r = spawnSync(tpinfer, ['make-model', '--shape', 'tiny', '--dtype', 'f32', '--out', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  const tmpl = fs.readFileSync(path.join(shared, 'chat-templates', template), 'utf8');
  const cfgPath = path.join(dir, 'tokenizer_config.json');
  const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
  cfg.chat_template = tmpl;
  fs.writeFileSync(cfgPath, JSON.stringify(cfg));
  if (asFile) fs.writeFileSync(path.join(dir, 'chat_template.jinja'), tmpl); // what the Jinja renderer reads first
  return dir;
}

async function main() {
  fs.mkdirSync(work, { recursive: true });
  const stories = await startServer('stories', ['-m', storiesDir, '--parallel', '4', '--queue', '32']);
  try {
    await completions(stories);
    curlFraming(stories);
    await concurrent(stories);
    await firstTokenWhileLong(stories);
    await disconnect(stories);
    await malformed(stories);
  } finally {
    await sigterm(stories, true);
  }
  const chatSrv = await startServer('chat', ['-m', chatModel(), '--model-name', 'chat-tiny', '--api-key', 'sekrit',
                                             '--parallel', '1', '--queue', '1', '--ctx', '512', '--timeout', '2']);
  try {
    await chat(chatSrv);
    await idleTimeout(chatSrv);
  } finally {
    await sigterm(chatSrv, false);
  }
  const mistral = await startServer('chat-mistral', ['-m', chatModel('chat-mistral', 'mistralai-Mistral-Nemo-Instruct-2407.jinja', true)]);
  try {
    await chatRefused(mistral);
  } finally {
    await sigterm(mistral, false);
  }
  console.log(failed ? `${failed} check(s) failed` : 'all checks passed');
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.log(`FAIL - ${e.stack}`);
  process.exit(1);
});
