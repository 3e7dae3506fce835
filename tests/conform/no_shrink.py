"""A pytest plugin for running ``examples/test_my_server.py`` in a test: no shrinking.

Loaded with ``-p tests.conform.no_shrink`` before the example is imported, so the example's
``settings(...)`` inherit these phases: a failure is reported at once (unshrunk), which keeps
the test that shows the example can fail short.
"""

from hypothesis import Phase, settings

# Derandomized: the same draws every run, so the tests that show the examples catch planted
# bugs cannot pass by luck of the draw (one in CI once drew 100 requests with no bare query).
settings.register_profile(
    "no-shrink", phases=[Phase.explicit, Phase.generate], database=None, derandomize=True
)
settings.load_profile("no-shrink")
