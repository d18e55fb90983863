from terraseg.models.resuneta.model import ResUNetA, ResUNetA_D6, ResUNetA_D6_Multitask, ResUNetA_D7

__all__ = ["ResUNetA", "ResUNetA_D6", "ResUNetA_D7", "ResUNetA_D6_Multitask"]
