"""Checkpoint formats: the one place that knows them, one module per topic.

===================  ================================================================================================
``io``               reading files (``.pt``, ``.pt.zip``, TorchScript), strict loading, atomic saving
``efficienttam``     the EfficientTAM release layout onto transformers' ``Sam2Video*`` names (+ our ViT)
``official``         the release layout ``{"model": state_dict}`` and its Hugging Face prefix
``segment_anything`` segment-anything / transformers SAM image-encoder keys onto our ViT
``backbone``         the SAMI backbone export, and a plain ViT out of any of this package's checkpoints
``trainer``          checkpoints of this package's own mmengine runs
===================  ================================================================================================

Every load reports missing / unexpected / mis-shaped keys and refuses a partial load. The names below are the
package's public checkpoint API (``from efficientsam_zoo.checkpoints import ...``).
"""
from .backbone import (SAMI_BACKBONE_FORMAT, backbone_state_dict, load_pretrained_backbone, load_segmenter_init,
                       read_sami_backbone, save_sami_backbone)
from .efficienttam import efficientsam_to_efficienttam, official_to_efficienttam, read_efficienttam_checkpoint
from .io import CheckpointError, atomic_torch_save, check_state_dict, listing, load_state_dict_strict, read_checkpoint
from .official import (HF_EFFICIENTSAM_PREFIX, SPEC_FILE, guess_efficientsam_variant, hf_to_official_efficientsam,
                       load_release_state_dict, official_to_hf_efficientsam, read_model_spec, read_official_state_dict,
                       save_official_checkpoint, write_model_spec)
from .segment_anything import hf_sam_vision_to_segment_anything, segment_anything_to_vit
from .trainer import read_trainer_checkpoint

__all__ = ["CheckpointError", "read_checkpoint", "read_official_state_dict", "check_state_dict",
           "load_state_dict_strict", "guess_efficientsam_variant", "save_official_checkpoint", "atomic_torch_save",
           "official_to_hf_efficientsam", "hf_to_official_efficientsam", "HF_EFFICIENTSAM_PREFIX",
           "segment_anything_to_vit", "hf_sam_vision_to_segment_anything", "backbone_state_dict",
           "save_sami_backbone", "read_sami_backbone", "SAMI_BACKBONE_FORMAT", "read_trainer_checkpoint",
           "load_pretrained_backbone", "load_segmenter_init", "SPEC_FILE", "read_model_spec", "write_model_spec",
           "load_release_state_dict", "official_to_efficienttam", "read_efficienttam_checkpoint",
           "efficientsam_to_efficienttam", "listing"]
