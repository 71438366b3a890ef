"""Shared test configuration: Hypothesis profiles.

* ``ci`` (used when the CI environment variable is set): derandomized, so CI runs are
  reproducible, with a moderate number of examples and no deadline.
* ``dev`` (default): random, same size.
* ``thorough``: many more examples; select with ``HYPOTHESIS_PROFILE=thorough``.
"""

import os

from hypothesis import HealthCheck, settings

# tests never write JAX's persistent compilation cache (diffcheck optimize turns it on);
# a test that wants it sets DIFFCHECK_CACHE itself
os.environ["DIFFCHECK_CACHE"] = "off"

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("dev", deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", deadline=None, max_examples=1000,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else
                                     "dev"))
