"""`python -m smpc_ehr` is the `smpc-ehr` command."""

from smpc_ehr.cli import main

raise SystemExit(main())
