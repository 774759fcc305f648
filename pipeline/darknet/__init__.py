"""Everything darknet, in one home.

cfg (a .cfg as data: parse/render), values (the values `configs` chooses and their rules),
lint (`check-cfg` rules, `Finding`), data (`check-cfg --data`: the .data and what it points
at), fork (which binary, what its parser knows, templates), paths (where each fork reads a
label), runner (the training command line, checkpoints, progress).
"""
