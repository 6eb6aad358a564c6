_base_ = ["../place_synthetic.py"]
method = dict(variant="ablation: ITA + PCMA + CCE (full PLACE)")
