"""What is tested: the version of the project's tree, the interpreter its checks run on, and the
scratch copy a run may work in."""
