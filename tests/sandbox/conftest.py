"""The sandbox carrier fixtures (a real ``runsandbox`` process, a webhook sink) for the sandbox's
own tests; they are defined with the messaging tests, which use them most."""

from tests.messaging.conftest import sandbox, sandbox_server, webhook_sink  # noqa: F401
