"""``python -m milter`` runs the ``tocsin`` command."""

from milter.cli import main

raise SystemExit(main())
