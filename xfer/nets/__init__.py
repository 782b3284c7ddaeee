"""World-model networks (EfficientZero; Ye et al. 2021): :mod:`xfer.nets.efficientzero` (representation,
dynamics and prediction networks), :mod:`xfer.nets.sizes` (the size table, no torch), :mod:`xfer.nets.blocks`,
:mod:`xfer.nets.support` (categorical value / reward supports)."""
