"""The guard suite: pytest + hypothesis guards, their strategies, the naive oracle and goldens."""
