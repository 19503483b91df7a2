"""`python -m splitbrain` is the `splitbrain` command."""

from splitbrain.cli import main

raise SystemExit(main())
