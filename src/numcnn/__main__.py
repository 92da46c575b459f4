"""``python -m numcnn`` runs the ``numcnn`` command."""
import sys

from .cli import main

sys.exit(main())
