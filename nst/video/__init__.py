"""Video: frames stylised in order, each started from the previous result warped by optical flow and held
to it by a temporal term (after Ruder, Dosovitskiy and Brox, 2016), so the output does not flicker."""
