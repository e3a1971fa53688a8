"""Vertex AI custom-training style package: `python -m trainer.task`."""

from setuptools import find_packages, setup

# The verified stack (see README "Stack"): TFRS 0.7.7 needs Keras 2 (tf-keras),
# and transformers 5 dropped TensorFlow.
REQUIRED = [
    "tensorflow==2.21.*",
    "tf-keras==2.21.*",
    "tensorflow-recommenders==0.7.7",
    "tensorflow-text==2.21.*",
    "tensorflow-serving-api==2.21.*",
    "tensorboard>=2.20",
    "transformers==4.54.1",
    "pandas>=2.2",
    "pyarrow>=15",
    "numpy>=1.26",
    "scipy>=1.11",
    "matplotlib>=3.8",
    "zipcodes==3.*",
]

EXTRAS = {
    "test": ["pytest>=8", "hypothesis>=6.100", "apache-beam[tfrecord]==2.77.*"],  # beam: batch prediction, Beam preparation
    "pipelines": ["apache-beam[tfrecord]==2.77.*", "kfp==2.17.*"],
}

setup(
    name="st-recommender",
    version="0.1.0",
    description="Spatio-temporal recommender: BERT item tower, GRU user tower, TFRS retrieval and ranking.",
    python_requires=">=3.11,<3.13",
    packages=find_packages(include=["trainer*", "serving*", "pipelines*"]),
    install_requires=REQUIRED,
    extras_require=EXTRAS,
    include_package_data=True,
)
