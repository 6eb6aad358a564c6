# Object detection: the suite's canonical card = MGCA's frozen-encoder YOLOv3 (datasets.md
# section 2.6) on RSNA and Object-CXR, run through mmdetection (YOLOV3 + YOLOV3Neck + YOLOV3Head on
# the encoder's C3/C4/C5, 3 anchors per scale = COCO YOLOv3 anchors x size/416). Nested stratified
# fractions, seeds 0/1/2; metric `map` = COCO AP over IoU 0.40:0.05:0.75 on every test image with
# ground truth (misses counted), plus ap50, the all-images variants and MGCA's inflated map_mgca.
task = dict(
    type="det",
    head="yolov3",
    size=None,  # None: the checkpoint pipeline's crop (224 for real models = MGCA's squash to 224)
    include_negatives=True,  # MGCA trains on negatives with no objects
    frozen=True,  # no gradient and eval mode: BatchNorm statistics never drift (pitfall 6)
    lr=5e-4,
    weight_decay=1e-6,  # AdamW
    batch_size=16,
    max_iters=None,  # None: max_epochs epochs of the unit's train subset
    max_epochs=50,
    val_interval=None,  # None: validate (whole valid split, map) once per epoch
    patience=10,  # validation rounds without a better val map before stopping (MGCA: 10 epochs)
    conf_thr=0.5,  # objectness threshold
    nms_iou=0.5,
    max_per_img=100,
    amp="auto",  # mixed precision only where CUDA is available
    num_workers=4,
    n_resamples=200,  # bootstrap resamples over test images (one pycocotools accumulate each)
    by_dataset=dict(  # MGCA's 1 % settings
        rsna=dict(by_fraction={"0.01": dict(lr=2e-4, batch_size=8)}),
        object_cxr=dict(by_fraction={"0.01": dict(lr=2.5e-4, batch_size=8)}),
    ),
)
fractions = [0.01, 0.1, 1.0]
seeds = [0, 1, 2]
