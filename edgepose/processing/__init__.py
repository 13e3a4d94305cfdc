"""Pure numpy/cv2 pre- and post-processing, testable without a session."""
