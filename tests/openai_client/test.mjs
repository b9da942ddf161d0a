// End-to-end test of Unicorn's OpenAI-compatible HTTP API with the official
// `openai` npm client, against a running system.
// Usage: node test.mjs http://127.0.0.1:8080/v1 [http://127.0.0.1:8081/v1]
// (the second: a server of a model with a vision tower, for the image checks)
// Prints one line per check and exits 1 if any failed.
import OpenAI from 'openai';

const baseURL = process.argv[2] ?? 'http://127.0.0.1:8080/v1';
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 120_000 });
// A 4x4 red PNG.
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAEElEQVR4nGP4z8AARwzEcQCukw/x0F8jngAAAABJRU5ErkJggg==';

let failures = 0;
function check(name, ok, detail = '') {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ': ' + detail : ''}`);
  if (!ok) failures++;
}
async function expectError(name, promise, status, test) {
  try {
    const r = await promise;
    check(name, false, `expected HTTP ${status}, got a response ${JSON.stringify(r).slice(0, 200)}`);
  } catch (e) {
    const ok = e instanceof OpenAI.APIError && e.status === status && test(e);
    check(name, ok, `${e.status} ${JSON.stringify(e.error)}`);
  }
}

// Models: the served model is listed and retrievable.
const models = [];
for await (const m of client.models.list()) models.push(m);
check('models.list', models.length === 1 && models[0].object === 'model', JSON.stringify(models));
const model = models[0]?.id;
const got = await client.models.retrieve(model);
check('models.retrieve', got.id === model);

// Chat, non-streaming, greedy.
const messages = [{ role: 'user', content: 'Hello! Who are you?' }];
const chat = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0 });
const answer = chat.choices[0].message.content;
const u = chat.usage;
check('chat non-streaming', chat.object === 'chat.completion' && typeof answer === 'string' &&
      answer.length > 0 && chat.choices[0].message.role === 'assistant', JSON.stringify(answer));
check('chat usage', u.prompt_tokens > 5 && u.completion_tokens > 0 && u.completion_tokens <= 16 &&
      u.total_tokens === u.prompt_tokens + u.completion_tokens, JSON.stringify(u));
check('chat finish_reason', ['stop', 'length'].includes(chat.choices[0].finish_reason) &&
      (chat.choices[0].finish_reason === 'length') === (u.completion_tokens === 16));

// Chat, streaming: the same greedy answer, delta by delta, with usage at the end.
const stream = await client.chat.completions.create({
  model, messages, max_tokens: 16, temperature: 0, stream: true,
  stream_options: { include_usage: true } });
let streamed = '', chunks = 0, role = null, finish = null, susage = null;
for await (const c of stream) {
  if (c.usage) susage = c.usage;
  if (!c.choices.length) continue;
  chunks++;
  role ??= c.choices[0].delta.role;
  streamed += c.choices[0].delta.content ?? '';
  finish ??= c.choices[0].finish_reason;
}
check('chat streaming equals non-streaming', streamed === answer && chunks > 2,
      `${chunks} chunks: ${JSON.stringify(streamed)}`);
check('chat streaming role/finish/usage', role === 'assistant' &&
      finish === chat.choices[0].finish_reason && susage?.completion_tokens === u.completion_tokens,
      JSON.stringify({ role, finish, susage }));

// The raw SSE framing: data: lines and the [DONE] terminator.
const raw = await fetch(`${baseURL}/chat/completions`, {
  method: 'POST', headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model, messages, max_tokens: 4, temperature: 0, stream: true }) });
const body = await raw.text();
check('SSE framing', raw.headers.get('content-type').startsWith('text/event-stream') &&
      body.startsWith('data: {') && body.endsWith('data: [DONE]\n\n'), JSON.stringify(body.slice(-60)));

// Completions (no template), streaming and not.
const comp = await client.completions.create({ model, prompt: 'The old man said that', max_tokens: 12, temperature: 0 });
const text = comp.choices[0].text;
check('completions', comp.object === 'text_completion' && text.length > 0 &&
      comp.usage.completion_tokens > 0, JSON.stringify(text));
let ctext = '';
for await (const c of await client.completions.create({ model, prompt: 'The old man said that', max_tokens: 12, temperature: 0, stream: true })) {
  ctext += c.choices[0]?.text ?? '';
}
check('completions streaming', ctext === text, JSON.stringify(ctext));

// stop: the text ends before the first occurrence of the stop string.
const words = text.trim().split(/\s+/);
if (words.length >= 3) {
  const stopWord = ' ' + words[2];
  const cut = text.slice(0, text.indexOf(stopWord));
  const s = await client.completions.create({ model, prompt: 'The old man said that', max_tokens: 12, temperature: 0, stop: [stopWord] });
  check('stop', s.choices[0].text === cut && s.choices[0].finish_reason === 'stop',
        JSON.stringify({ stopWord, got: s.choices[0].text, cut }));
}

// seed: the same seed, the same sampled text; top_p is accepted.
const sampled = async (seed) => (await client.completions.create({
  model, prompt: 'It was', max_tokens: 12, temperature: 1, top_p: 0.9, seed })).choices[0].text;
const [a, b] = [await sampled(7), await sampled(7)];
check('seed reproducible', a === b, JSON.stringify([a, b]));

// Errors in OpenAI's shape.
await expectError('unknown model -> 404', client.chat.completions.create({ model: 'no-such-model', messages }),
  404, (e) => e.error?.code === 'model_not_found' && e.param === 'model' && /no-such-model/.test(e.message));
await expectError('temperature 5 -> 400', client.chat.completions.create({ model, messages, temperature: 5 }),
  400, (e) => e.type === 'invalid_request_error' && e.param === 'temperature');
await expectError('bad role -> 400', client.chat.completions.create({ model, messages: [{ role: 'tool', content: 'x' }] }),
  400, (e) => e.type === 'invalid_request_error' && /role/.test(e.message));

// Images to a text-only model (the demo): a valid PNG data URL is decoded,
// then refused clearly, naming the missing vision tower.
const image = [{ role: 'user', content: [
  { type: 'text', text: 'What colour is this?' },
  { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }] }];
await expectError('image to a text-only model -> clear 400', client.chat.completions.create({ model, messages: image }),
  400, (e) => e.type === 'invalid_request_error' && /has no vision tower/.test(e.message));
const broken = [{ role: 'user', content: [
  { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }];
await expectError('broken image -> 400', client.chat.completions.create({ model, messages: broken }),
  400, (e) => e.param === 'messages[0].content[0]');

// Images to a model with a vision tower (vision-small), when a second
// server is given: the image goes through the vision worker.
const visionURL = process.argv[3];
if (visionURL) {
  const vclient = new OpenAI({ baseURL: visionURL, apiKey: 'unused', maxRetries: 0, timeout: 120_000 });
  const vmodels = [];
  for await (const m of vclient.models.list()) vmodels.push(m);
  const vmodel = vmodels[0]?.id;
  const vchat = await vclient.chat.completions.create({ model: vmodel, messages: image, max_tokens: 8, temperature: 0 });
  const vu = vchat.usage;
  // The prompt holds the image's 16 soft tokens besides the text.
  check('image completion', vchat.object === 'chat.completion' &&
        typeof vchat.choices[0].message.content === 'string' && vu.completion_tokens > 0 &&
        vu.prompt_tokens > 16, JSON.stringify({ content: vchat.choices[0].message.content, vu }));
  const again = await vclient.chat.completions.create({ model: vmodel, messages: image, max_tokens: 8, temperature: 0 });
  check('image completion is deterministic', again.choices[0].message.content === vchat.choices[0].message.content);
  // A bad data URL: OpenAI's error JSON with HTTP 400, read raw.
  const bad = await fetch(`${visionURL}/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: vmodel, messages: broken }) });
  const badBody = await bad.json();
  check('bad data URL -> OpenAI error JSON, 400', bad.status === 400 &&
        badBody.error?.type === 'invalid_request_error' && typeof badBody.error?.message === 'string' &&
        badBody.error?.param === 'messages[0].content[0]', JSON.stringify(badBody));
  const remote = [{ role: 'user', content: [
    { type: 'image_url', image_url: { url: 'http://example.com/cat.png' } }] }];
  await expectError('remote image URL -> clear 400', vclient.chat.completions.create({ model: vmodel, messages: remote }),
    400, (e) => /only data: URLs/.test(e.message));
}

console.log(failures ? `${failures} check(s) failed` : 'all checks passed');
process.exit(failures ? 1 : 0);
