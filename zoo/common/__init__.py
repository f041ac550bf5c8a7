"""Building blocks shared by several papers' models: ResNets (plain and dilated),
U-Net blocks and decoder, keras.applications encoders and their taps, segmentation
heads, shared layers (input scaling, attention gate, DANet attention, adaptive
pooling) and argument validation. Nothing here belongs to one paper."""
