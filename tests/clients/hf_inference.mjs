// One call of @huggingface/inference's InferenceClient, written as a user writes it, with only the
// endpoint changed: node hf_inference.mjs <endpointUrl> <method> [<args JSON>] [<options JSON>].
// The key comes from GATEWAY_KEY. Prints one JSON line: {ok: true, value} (a Blob as its type,
// size and bytes in base64; a stream as its chunks) or {ok: false, error: {name, message, status, requestId, body}}.
// Option `abort_after_ms` aborts the call then (a client that would resend forever ends).
import { InferenceClient } from "@huggingface/inference";

const [endpointUrl, method, argsJson = "{}", optionsJson = "{}"] = process.argv.slice(2);
const { abort_after_ms: abortAfterMs, ...options } = JSON.parse(optionsJson);
if (abortAfterMs) {
  options.signal = AbortSignal.timeout(abortAfterMs);
}
const client = new InferenceClient(process.env.GATEWAY_KEY ?? "", { endpointUrl });

async function described(value) {
  if (value && typeof value[Symbol.asyncIterator] === "function") {
    const chunks = [];
    for await (const chunk of value) {
      chunks.push(chunk);
    }
    return { chunks };
  }
  if (value instanceof Blob) {
    const bytes = Buffer.from(await value.arrayBuffer());
    return { blob: { type: value.type, size: value.size, base64: bytes.toString("base64") } };
  }
  return { value };
}

try {
  const value = await client[method](JSON.parse(argsJson), options);
  console.log(JSON.stringify({ ok: true, ...(await described(value)) }));
} catch (error) {
  const response = error.httpResponse ?? {};
  console.log(
    JSON.stringify({
      ok: false,
      error: {
        name: error.name,
        message: error.message,
        status: response.status ?? null,
        requestId: response.requestId ?? null,
        body: response.body ?? null,
      },
    }),
  );
}
