"""``python -m bench.chatstream``: the same as ``bench/chat_stream.py``."""

from bench.chatstream.cli import main

main()
