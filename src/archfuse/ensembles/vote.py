"""ensemble=vote: hard majority vote of the members' predicted classes, optionally weighted
(``weights: [...]``); a tie goes to the tied class with the largest summed probability."""

from typing import Any

from torch import Tensor
import torch.nn.functional as F

from archfuse.ensembles.members import MemberEnsemble, check_weights, weight_tensor

TIE = 1e-6  # weighted vote counts closer than this are a tie


def majority_vote(member_logits: Tensor, weights: Tensor) -> Tensor:
    """Log of the (weighted) vote shares, the winner nudged above any class tied with it; classes with no
    vote get a tiny share, so the cross-entropy of a vote stays finite."""
    k, n, c = member_logits.shape
    votes = (weights[:, None, None] * F.one_hot(member_logits.argmax(-1), c).to(weights.dtype)).sum(0)
    tied = votes >= votes.max(-1, keepdim=True).values - TIE
    summed = member_logits.softmax(-1).sum(0)
    winner = summed.masked_fill(~tied, float("-inf")).argmax(-1)
    shares = votes + 1e-3 * F.one_hot(winner, c).to(votes.dtype)
    shares = shares.clamp_min(1e-6)
    return (shares / shares.sum(-1, keepdim=True)).log()


class Vote(MemberEnsemble):
    combine = staticmethod(majority_vote)

    def __init__(self, *, weights: list | None, **choice: Any):
        super().__init__(**choice)
        check_weights(weights)
        self.weights = weights

    def combiner_tensors(self, k: int, num_classes: int) -> dict[str, Tensor]:
        return {"weights": weight_tensor(self.weights, k)}
