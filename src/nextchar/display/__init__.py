"""How results look: terminal tables and bars, Jupyter HTML, figures, progress bars.
Imports only core/."""
