"""The release stage: export of a run as the prediction command's model, its generated model card,
and the checks of the released command (consistency with evaluation, speed)."""
