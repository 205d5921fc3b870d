"""Measures: distances between point sets (sliced W2, MMD), image metrics (FD-LeNet), kernel density estimates."""
