"""Model registry: ``build(name, in_channels, num_classes, **options)``.

Contract used by training, prediction, export and the GUI:

* ``build`` returns a ``torch.nn.Module`` whose ``forward(x)`` takes ``(N, in_channels, H, W)`` of any
  H, W (padding to the network stride happens inside) and returns logits ``(N, num_classes, H, W)``;
  the multitask ResUNet-a returns a named structure whose ``segmentation`` field holds class
  probabilities.
* ``probabilities(output)`` turns any model output into class probabilities ``(N, C, H, W)``.
* ``available()`` lists registry names; any segmentation-models-pytorch architecture is reachable as
  ``smp:<Arch>`` (e.g. ``smp:UnetPlusPlus`` with ``encoder_name=...``).
"""
