// A child that exits at once with code 0: what "a process that has exited" looks like.
