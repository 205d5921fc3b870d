"""Measures: distances between point sets (sliced W2, MMD), image metrics (FD-LeNet), k-NN precision, recall,
density and coverage, kernel density estimates."""
