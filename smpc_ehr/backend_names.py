"""The names of the MPC backends this build has: a leaf module, so that study templates
(a leaf layer) can check a template's backend without importing the backends.

`smpc_ehr.backends` registers one `Backend` under each of these names, and refuses to
import if the two lists differ.
"""

BACKEND_NAMES = ("mpyc", "crypten")
