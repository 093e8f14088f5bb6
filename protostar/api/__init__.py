"""The HTTP APIs, mounted in one place (``protostar.api.main``): ``/api/v1/`` (typed, OpenAPI 3.1, docs at
``/api/v1/docs``) and the OpenAI-compatible ``/v1/`` over our answers. Each domain keeps its routes in its own app
(``knowledge/api.py``, ``chat/api.py``, ``chat/openai_api.py``); here are only the wiring, parameter bounds and the
shape of errors."""
