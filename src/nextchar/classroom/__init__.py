"""The classroom: the lab of the notes (lab.py) and the shape explainer (shapes.py), in a
package of their own so that `nextchar.lab` and `nextchar.shapes` are free to be the notebook
functions (api.py)."""
