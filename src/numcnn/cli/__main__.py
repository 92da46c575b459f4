"""``python -m numcnn.cli`` runs the ``numcnn`` command."""
import sys

from . import main

sys.exit(main())
