"""The ONNX graphs nst runs, built from the exported VGG-19 in standard ai.onnx operators: the model file read
into a layer list (`vgg`), the graph-building kit (`onnxbuild`), the forward and backward graphs (`network`), the
fused objective (`fused`) and the Adam step (`adamstep`)."""
