"""The seed README's core API example ("核心API用法"), verbatim.

Only the four lines before the marker are added: the seed leaves `train_loss`, `train_acc`,
`val_loss` and `val_acc` to its reader ("# ... 训练代码 ..."). Run by test_seed_example.py in
a scratch directory (the example writes to ./experiments).
"""
train_loss = 0.42
train_acc = 0.87
val_loss = 0.48
val_acc = 0.85
# ---- the seed README's code block, unchanged, from here on ----
from pathlib import Path
from experiment_manager.core.experiment import Experiment

# 创建实验 - 智能运行ID分配
exp = Experiment(
    name="my_experiment",
    command="python train.py --epochs 100 --lr 0.001",
    base_dir=Path("./experiments"),
    tags=["deep-learning", "classification"]
)

print(f"智能分配的运行ID: {exp.current_run_id}")  # run_0001

# 新的CSV指标记录系统
exp.upd_row(
    model="ResNet-18",
    dataset="CIFAR-10",
    batch_size=128,
    learning_rate=0.001
)
exp.save_row()  # 保存配置行

# 训练循环中的指标记录
for epoch in range(1, 11):
    # ... 训练代码 ...
    
    # 记录每个epoch的指标
    exp.upd_row(
        epoch=epoch,
        train_loss=train_loss,
        train_acc=train_acc,
        val_loss=val_loss,
        val_acc=val_acc
    )
    exp.save_row()

# pandas数据分析
df = exp.load_metrics_df()
best_acc = df['val_acc'].max()
best_epoch = df.loc[df['val_acc'].idxmax()]
print(f"最佳性能: Epoch {best_epoch['epoch']}, 准确率 {best_acc:.4f}")
