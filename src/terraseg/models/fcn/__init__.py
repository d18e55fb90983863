from terraseg.models.fcn.model import FCN8s, FCN32s

__all__ = ["FCN32s", "FCN8s"]
