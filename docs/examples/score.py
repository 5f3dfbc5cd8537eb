"""Score passages and an article with slant over gRPC (grpcio).

Stubs come from proto/ (see the README):
    python -m grpc_tools.protoc -I proto --python_out=py --grpc_python_out=py proto/slant/v1/slant.proto
    PYTHONPATH=py python docs/examples/score.py 127.0.0.1:50051
"""

import sys

import grpc
from slant.v1 import slant_pb2, slant_pb2_grpc


def main(addr: str) -> None:
    with grpc.insecure_channel(addr) as channel:
        scorer = slant_pb2_grpc.ScorerStub(channel)

        # A batch of passages, with the 3 features that pushed each head most.
        response = scorer.Score(
            slant_pb2.ScoreRequest(
                passages=["You will NOT believe what happened next!!"], explain=3
            ),
            timeout=10,
        )
        for head in response.results[0].heads:
            p = {lp.label: round(lp.probability, 3) for lp in head.probabilities}
            print(f"{head.head:15} {head.label:16} {p}")
            for c in head.contributions:
                print(f"{'':15} {c.feature!r} {c.weight:+.2f}")

        # An article: the server splits it into passages and sums it up.
        article = scorer.ScoreArticle(
            slant_pb2.ArticleRequest(
                text="Markets fell sharply. Officials urged calm.",
                title="Panic on Wall Street?",
            ),
            timeout=10,
        )
        for h in article.summary:
            print(f"summary {h.head:15} {h.label}")
        print(f"model {article.model} version {article.model_version} ({article.model_id})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051")
