# Object detection, a separately named card (recorded as variant "faster_rcnn"): mmdetection's
# Faster R-CNN + FPN (RPN, RoIAlign 7x7, two shared FCs) on the frozen encoder's C2..C5, with
# mmdet's standard training / test settings (SGD lr 0.02, momentum 0.9, wd 1e-4, linear warm-up;
# test score >= 0.05, NMS 0.5, 100 per image). Same input (squash), splits, fractions, seeds and
# metrics as the MGCA card (configs/_base_/tasks/det.py).
_base_ = ["./det.py"]

task = dict(
    head="faster_rcnn",
    lr=0.02,
    weight_decay=1e-4,
    warmup_iters=500,
    conf_thr=0.5,  # unused by faster_rcnn (no objectness)
    score_thr=0.05,
    nms_iou=0.5,
    by_dataset=dict(_delete_=True),
)
