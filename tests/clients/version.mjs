// The installed @huggingface/inference, as the tests import it: its version and its client.
// node version.mjs <url>: the URL is only echoed back (every script of tests/clients takes one).
import { createRequire } from "node:module";
import { InferenceClient } from "@huggingface/inference";

const manifest = createRequire(import.meta.url)("@huggingface/inference/package.json");
const client = new InferenceClient("", { endpointUrl: process.argv[2] });
console.log(
  JSON.stringify({
    version: manifest.version,
    client: typeof InferenceClient,
    methods: ["translation", "textGeneration", "textToImage", "chatCompletion"].filter(
      (name) => typeof client[name] === "function",
    ),
    node: process.versions.node,
    url: process.argv[2],
  }),
);
