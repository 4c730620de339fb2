"""Training data at scale: readers of each dataset's annotation format, torch datasets and a recipe's data sources.

- :mod:`.readers`: one reader per dataset, each release's files -> conversations in the paper's templates;
- :mod:`.dataset`: lazy, skipping :class:`ConversationDataset` and the :class:`WeightedMixture` of sources;
- :mod:`.sources`: a recipe's ``data:`` section read into the datasets a run trains and evaluates on.
"""

from .dataset import SKIP_REASONS, ConversationDataset, WeightedMixture, assistant_turn_ends
from .readers import READERS, Conversation, Reader, get_reader

__all__ = [
    "READERS",
    "SKIP_REASONS",
    "Conversation",
    "ConversationDataset",
    "Reader",
    "WeightedMixture",
    "assistant_turn_ends",
    "get_reader",
]
