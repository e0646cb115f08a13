"""The language server: pygls features over the worker (a child process) and the explorer.

Never imports torch: scripts run in the worker's child process, the Model Explorer server is
a separate process too.
"""
