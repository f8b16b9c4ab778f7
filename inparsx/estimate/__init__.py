"""The label-free estimate: how much training helped, measured on synthetic queries of held-out documents."""
