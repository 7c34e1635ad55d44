"""The commands, one module each, every one a click command defined at module level.

Each module holds its command's options, help and examples, and its body: a plain
function that runs the async part with ``asyncio.run`` and always closes its client.
Failures are raised (the SDK's errors as they are, the command line's own as
``CommandError``); the runner turns them into one error line and an exit status.
``app`` adds them to the root group, in the order ``--help`` lists them.
"""
