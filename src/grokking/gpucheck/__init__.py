"""The GPU acceptance check: :mod:`.guard`, the device guard (the engine trained on the ``meta`` stand-in in
``make test``, or on CUDA), and :mod:`.audit`, the families and training paths it trains. Importing this package
imports no torch.
"""
