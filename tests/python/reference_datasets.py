"""The reference programs' own dataset classes, transcribed (test code): what the exporters must
feed unmodified. Bodies are the originals' lines; only what pins them to their authors' disks
changed (OGM-GE's hard-coded `../data/` root is a parameter) and prints were dropped.

- `OgmAVDataset`: GeWu-Lab/OGM-GE_CVPR2022 @ 343dc1d, `dataset/dataset.py::AVDataset` (KS/AVE).
- `BbKineticsSoundsDataset`, `BbCREMADDataset`, `BbVGGSoundDataset`: GeWu-Lab/BalanceBenchmark
  @ 4c1482f, `balancemm/datasets/{KS,cremad,VGG}_dataset.py`.
"""

import copy
import csv
import os
import os.path as osp
import pickle
import random

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms


class OgmAVDataset(Dataset):
    def __init__(self, dataset, data_root, mode="train"):
        classes = []
        data = []
        data2class = {}
        self.mode = mode

        self.data_root = data_root

        self.visual_feature_path = os.path.join(self.data_root, dataset, "visual/")
        self.audio_feature_path = os.path.join(self.data_root, dataset, "audio_spec/")
        self.stat_path = os.path.join(self.data_root, dataset, "stat.txt")
        self.train_txt = os.path.join(self.data_root, dataset, "my_train.txt")
        self.test_txt = os.path.join(self.data_root, dataset, "my_test.txt")

        with open(self.stat_path) as f1:
            csv_reader = csv.reader(f1)
            for row in csv_reader:
                classes.append(row[0])

        if mode == "train":
            csv_file = self.train_txt
        else:
            csv_file = self.test_txt

        with open(csv_file) as f2:
            csv_reader = csv.reader(f2)
            for item in csv_reader:
                audio_path = os.path.join(self.audio_feature_path, item[1] + ".pkl")
                visual_path = os.path.join(self.visual_feature_path, item[1])
                if os.path.exists(audio_path) and os.path.exists(visual_path):
                    if dataset == "AVE":
                        # AVE, delete repeated labels
                        a = set(data)
                        if item[1] in a:
                            del data2class[item[1]]
                            data.remove(item[1])
                    data.append(item[1])
                    data2class[item[1]] = item[0]
                else:
                    continue

        self.classes = sorted(classes)
        self.data2class = data2class
        self.av_files = []
        for item in data:
            self.av_files.append(item)

    def __len__(self):
        return len(self.av_files)

    def __getitem__(self, idx):
        av_file = self.av_files[idx]

        # Audio
        audio_path = os.path.join(self.audio_feature_path, av_file + ".pkl")
        spectrogram = pickle.load(open(audio_path, "rb"))

        # Visual
        visual_path = os.path.join(self.visual_feature_path, av_file)
        file_num = len(os.listdir(visual_path))

        if self.mode == "train":
            transform = transforms.Compose(
                [
                    transforms.RandomResizedCrop(224),
                    transforms.RandomHorizontalFlip(),
                    transforms.ToTensor(),
                    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
                ]
            )
        else:
            transform = transforms.Compose(
                [
                    transforms.Resize(size=(224, 224)),
                    transforms.ToTensor(),
                    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
                ]
            )

        pick_num = 3
        seg = int(file_num / pick_num)
        path1 = []
        image = []
        image_arr = []
        t = [0] * pick_num

        for i in range(pick_num):
            t[i] = seg * i + 1
            path1.append("frame_0000" + str(t[i]) + ".jpg")
            image.append(Image.open(visual_path + "/" + path1[i]).convert("RGB"))
            image_arr.append(transform(image[i]))
            image_arr[i] = image_arr[i].unsqueeze(1).float()
            if i == 0:
                image_n = copy.copy(image_arr[i])
            else:
                image_n = torch.cat((image_n, image_arr[i]), 1)

        return spectrogram, image_n, self.classes.index(self.data2class[av_file]), av_file


class BbKineticsSoundsDataset(Dataset):
    def __init__(self, args: dict, transforms=None):
        self.data = []
        self.label = []
        self.mode = args["mode"]
        if self.mode == "train":
            self.csv_path = args["csv_path_train"]
            self.audio_path = args["audio_path_train"]
            self.visual_path = args["visual_path_train"]
        else:
            self.csv_path = args["csv_path_test"]
            self.audio_path = args["audio_path_test"]
            self.visual_path = args["visual_path_test"]

        with open(self.csv_path) as f:
            for line in f:
                item = line.split("\n")[0].split(" ")
                name = item[0]

                if os.path.exists(self.audio_path + "/" + name + ".npy"):
                    path = self.visual_path + "/" + name
                    files_list = [lists for lists in os.listdir(path)]
                    if len(files_list) > 3:
                        self.data.append(name)
                        self.label.append(int(item[-1]))
        self.transforms = transforms

    def __len__(self):
        return len(self.data)

    def __getitem__(self, idx):
        av_file = self.data[idx]

        spectrogram = np.load(self.audio_path + "/" + av_file + ".npy")
        spectrogram = np.expand_dims(spectrogram, axis=0)

        # Visual
        path = self.visual_path + "/" + av_file
        files_list = [lists for lists in os.listdir(path)]
        file_num = len([fn for fn in files_list if fn.endswith("jpg")])
        if self.mode == "train":
            transf = transforms.Compose(
                [
                    transforms.RandomResizedCrop(224),
                    transforms.RandomHorizontalFlip(),
                    transforms.ToTensor(),
                    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
                ]
            )
        else:
            transf = transforms.Compose(
                [
                    transforms.Resize(size=(224, 224)),
                    transforms.ToTensor(),
                    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
                ]
            )

        pick_num = 3
        seg = int(file_num / pick_num)
        path1 = []
        image = []
        image_arr = []
        t = [0] * pick_num

        for i in range(pick_num):
            if self.mode == "train":
                t[i] = random.randint(i * seg + 1, i * seg + seg) if file_num > 6 else 1
                if t[i] >= 10:
                    t[i] = 9
            else:
                t[i] = i * seg + max(int(seg / 2), 1) if file_num > 6 else 1

            path1.append("frame_0000" + str(t[i]) + ".jpg")
            image.append(Image.open(path + "/" + path1[i]).convert("RGB"))

            image_arr.append(transf(image[i]))
            image_arr[i] = image_arr[i].unsqueeze(1).float()

            if i == 0:
                image_n = copy.copy(image_arr[i])
            else:
                image_n = torch.cat((image_n, image_arr[i]), 1)

        label = self.label[idx]

        return {"visual": image_n, "audio": spectrogram, "label": label, "idx": idx}


class BbCREMADDataset(Dataset):
    def __init__(self, args: dict):
        self.image = []
        self.audio = []
        self.label = []
        class_dict = {"NEU": 0, "HAP": 1, "SAD": 2, "FEA": 3, "DIS": 4, "ANG": 5}

        self.mode = args["mode"]
        self.fps = args["fps"]
        self.visual_path = args["visual_path"]
        self.audio_path = args["audio_path"]
        self.train_txt = args["train_txt"]
        self.test_txt = args["test_txt"]
        self.aid_transform = transforms.Compose([transforms.ToTensor()])
        if self.mode == "train":
            self.csv_file = self.train_txt
        else:
            self.csv_file = self.test_txt
        self.data = []
        self.label = []
        with open(self.csv_file) as f:
            csv_reader = csv.reader(f)
            for item in csv_reader:
                if (
                    item[1] in class_dict
                    and os.path.exists(osp.join(self.audio_path, item[0] + ".pt"))
                    and os.path.exists(osp.join(self.visual_path, item[0]))
                    and len(os.listdir(osp.join(self.visual_path, item[0]))) >= self.fps
                ):
                    self.data.append(item[0])
                    self.label.append(class_dict[item[1]])

    def __len__(self):
        return len(self.data)

    def __getitem__(self, idx):
        datum = self.data[idx]

        # Audio
        fbank = torch.load(self.audio_path + datum + ".pt").unsqueeze(0)

        # Visual
        if self.mode == "train":
            transf = transforms.Compose(
                [
                    transforms.RandomResizedCrop(224),
                    transforms.RandomHorizontalFlip(),
                    transforms.ToTensor(),
                    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
                ]
            )
        else:
            transf = transforms.Compose(
                [
                    transforms.Resize(size=(224, 224)),
                    transforms.ToTensor(),
                    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
                ]
            )

        folder_path = self.visual_path + datum
        file_num = len(os.listdir(folder_path))
        file_list = os.listdir(folder_path)
        pick_num = self.fps
        seg = int(file_num / pick_num)
        image_arr = []

        for i in range(pick_num):
            if self.mode == "train":
                index = i * seg + np.random.randint(seg)
            else:
                index = i * seg + seg // 2
            path = os.path.join(folder_path, file_list[index])
            image_arr.append(transf(Image.open(path).convert("RGB")).unsqueeze(0))

        images = torch.cat(image_arr)

        label = self.label[idx]
        images = images.permute(1, 0, 2, 3)
        return {"audio": fbank, "visual": images, "label": label, "idx": idx}


class BbVGGSoundDataset(Dataset):
    def __init__(self, args, mode="train"):
        self.args = args
        self.mode = args["mode"]
        train_video_data = []
        train_audio_data = []
        test_video_data = []
        test_audio_data = []
        train_label = []
        test_label = []
        train_class = []
        test_class = []
        csv_root = args["csv_root"]
        video_train_root = args["video_train_root"]
        video_test_root = args["video_test_root"]
        audio_train_root = args["audio_train_root"]
        audio_test_root = args["audio_test_root"]

        train_valid = 0
        test_valid = 0
        with open(csv_root) as f:
            csv_reader = csv.reader(f)
            for item in csv_reader:
                if item[3] == "train":
                    video_dir = os.path.join(video_train_root, item[0] + "_" + item[1])
                    audio_dir = os.path.join(audio_train_root, item[0] + "_" + item[1] + ".npy")

                    if os.path.exists(video_dir) and os.path.exists(audio_dir) and len(os.listdir(video_dir)) > 3:
                        train_video_data.append(video_dir)
                        train_audio_data.append(audio_dir)
                        if item[2] not in train_class:
                            train_class.append(item[2])
                        train_label.append(item[2])
                        train_valid += 1

                if item[3] == "test":
                    video_dir = os.path.join(video_test_root, item[0] + "_" + item[1])
                    audio_dir = os.path.join(audio_test_root, item[0] + "_" + item[1] + ".npy")

                    if os.path.exists(video_dir) and os.path.exists(audio_dir) and len(os.listdir(video_dir)) > 3:
                        test_video_data.append(video_dir)
                        test_audio_data.append(audio_dir)
                        if item[2] not in test_class:
                            test_class.append(item[2])
                        test_label.append(item[2])
                        test_valid += 1

        assert len(train_class) == len(test_class)

        if len(train_class) == 0:
            raise ValueError("If you see this, it means you have problem in reading dataset")

        self.classes = train_class

        class_dict = dict(zip(self.classes, range(len(self.classes))))

        if self.mode == "train":
            self.video = train_video_data
            self.audio = train_audio_data
            self.label = [class_dict[train_label[idx]] for idx in range(len(train_label))]
        else:
            self.video = test_video_data
            self.audio = test_audio_data
            self.label = [class_dict[test_label[idx]] for idx in range(len(test_label))]

    def __len__(self):
        return len(self.video)

    def __getitem__(self, idx):
        spectrogram = np.load(self.audio[idx])

        # Def Image Transform
        if self.mode == "train":
            transform = transforms.Compose(
                [
                    transforms.RandomResizedCrop(224),
                    transforms.RandomHorizontalFlip(),
                    transforms.ToTensor(),
                    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
                ]
            )
        else:
            transform = transforms.Compose(
                [
                    transforms.Resize(size=(224, 224)),
                    transforms.ToTensor(),
                    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
                ]
            )

        pick_num = self.args["use_video_frames"]
        image_samples = os.listdir(self.video[idx])
        image_samples = sorted(image_samples)
        file_num = len(image_samples)
        select_index = np.random.choice(len(image_samples), size=pick_num, replace=False)
        select_index.sort()
        images = torch.zeros((pick_num, 3, 224, 224))
        t = [0] * pick_num
        seg = file_num // pick_num
        for i in range(pick_num):
            if self.mode == "train":
                t[i] = random.randint(i * seg + 1, i * seg + seg) if file_num > 6 else 1
                if t[i] >= 10:
                    t[i] = 9
            else:
                t[i] = i * seg + max(int(seg / 2), 1) if file_num > 6 else 1
        for i, idx_frame in enumerate(select_index):
            img_path = os.path.join(self.video[idx], image_samples[t[i] - 1])
            img = Image.open(img_path).convert("RGB")
            img = transform(img)
            images[i] = img

        spectrogram = torch.tensor(spectrogram).unsqueeze(0).float()
        images = images.permute(1, 0, 2, 3)

        # label
        return {"audio": spectrogram, "visual": images, "label": self.label[idx], "idx": idx}
