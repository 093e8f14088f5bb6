"""Chat streaming: per-token relay latency from the model server to N browsers, added time-to-first-token, lost
tokens and total memory, through the real stack (daphne, the threaded chat worker, Redis, PostgreSQL, S3).

    .venv/bin/python bench/chat_stream.py [--n 1,10,100] [--tps 30] [--tokens 200] [--ramp 2] [--burst] [--tap]

Processes: the embedded servers (``PROTOSTAR_DATA_DIR``, default ``.data/bench-chat``), one daphne on a free loopback
port, ``--workers`` chat worker processes (``chat.worker.ThreadedWorker``, ``--threads`` jobs each), and the scripted
LLM server in its own process. The LLM server is the stock test server with an emission log: every content chunk is
logged as (question tag, token text, ``x_emitted_at``). Each answer is ``t0001 t0002 …``, so every token text is
unique within an answer and the client looks its emission time up by (its question tag, text) after the run; a
token that never arrives, arrives twice, out of order or with other text is counted as lost/disordered.

Relay = client receipt − model emission, per token. Added TTFT = model request received (server log) − ask sent.
Memory = peak of the summed RSS of daphne, the worker(s) and their children, postgres (all backends), redis and the
S3 server, sampled every 0.25 s. Baseline: XADD→XREAD BLOCK on the same Redis (one writer, one blocked reader).
``--tap`` also reads every answer's Redis stream from the bench process, splitting relay into model→Redis (worker)
and Redis→browser (consumer + daphne); it adds N readers of load, so tapped rows are for diagnosis.

Diagnosis: ``--profile`` samples the on-CPU Python stacks of daphne and the workers per round
(``<data dir>/logs/profile-*.json``); ``--patch NAME`` runs daphne/workers with an experimental variant of
``chat`` code (see ``PATCHES``; nothing under ``chat/`` changes); ``--env``/``--worker-env`` set settings such as
``DB_POOL_MAX_SIZE`` or ``OMP_NUM_THREADS``. Results: ``docs/benchmarks.md`` ("Chat streaming").
"""
