"""Training data at scale: the paper's templates, readers of each dataset's annotation format, and torch datasets."""

from .dataset import SKIP_REASONS, ConversationDataset, WeightedMixture, assistant_turn_ends
from .readers import READERS, Conversation, Reader, get_reader
from .templates import (
    CAPTION_PROMPT,
    GROUNDING_PROMPT,
    MULTIPLE_CHOICE_PROMPT,
    REGION_CAPTION_PROMPT,
    VQA_PROMPT,
    VSR_PROMPT,
    caption_turn,
    format_box,
    grounding_turn,
    multiple_choice_turn,
    region_caption_turn,
    vqa_turn,
    vsr_turn,
)

__all__ = [
    "CAPTION_PROMPT",
    "GROUNDING_PROMPT",
    "MULTIPLE_CHOICE_PROMPT",
    "READERS",
    "REGION_CAPTION_PROMPT",
    "SKIP_REASONS",
    "VQA_PROMPT",
    "VSR_PROMPT",
    "Conversation",
    "ConversationDataset",
    "Reader",
    "WeightedMixture",
    "assistant_turn_ends",
    "caption_turn",
    "format_box",
    "get_reader",
    "grounding_turn",
    "multiple_choice_turn",
    "region_caption_turn",
    "vqa_turn",
    "vsr_turn",
]
