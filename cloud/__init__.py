"""Google Cloud access below the pipeline: Cloud Storage objects and notifications, and the emulator seam.

No Beam transforms here: ``transforms`` wraps these functions in stages, ``results``
and ``app`` use the same clients. ``cloud.emulators`` is the only place that reads the
``*_EMULATOR_HOST`` variables the local stack sets.
"""
