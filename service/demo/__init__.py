"""Demo mode (`DEMO=1 sh start.sh`): the service as it is, answering from recordings.

A newcomer without a token, or without a network, can see the service answer: a small
upstream on the loopback interface replays real answers that Hugging Face's own client
libraries recorded in their test suites (recordings.json, each with its source), the service
calls it instead of the Hugging Face router, and every answer and the page say so.

Never on by accident: it starts only from `DEMO=1` on the command line, refuses to run beside a
real HF_API_TOKEN, serves on 127.0.0.1 unless DEMO_PUBLIC=1 confirms another address, and keeps
its store in a temporary folder of its own, so nothing of the real service's is touched.
"""
