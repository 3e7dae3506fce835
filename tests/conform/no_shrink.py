"""A pytest plugin for running ``examples/test_my_server.py`` in a test: no shrinking.

Loaded with ``-p tests.conform.no_shrink`` before the example is imported, so the example's
``settings(...)`` inherit these phases: a failure is reported at once (unshrunk), which keeps
the test that shows the example can fail short.
"""

from hypothesis import Phase, settings

settings.register_profile("no-shrink", phases=[Phase.explicit, Phase.generate], database=None)
settings.load_profile("no-shrink")
