from setuptools import find_packages, setup

setup(
    name="web_background",
    version="0.1.0",
    description="Background jobs with live output for web.py (@background / @backgrounder, done properly)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=find_packages(include=["web_background", "web_background.*"]),
    package_data={"web_background": ["static/*.js", "static/*.css", "locale/*.pot", "locale/*/LC_MESSAGES/*.po",
                                     "locale/*/LC_MESSAGES/*.mo"]},
    python_requires=">=3.9",
    install_requires=["web.py>=0.62"],
    extras_require={
        "redis": ["redis>=4.2"],
        "rq": ["redis>=4.2", "rq>=1.15"],
        "example": [],
        "bench": ["redis>=4.2", "rq>=1.15"],  # benchmarks/bench.py's Redis and RQ rows
        "test": ["pytest>=7", "hypothesis>=6", "gunicorn>=21", "redis>=4.2", "rq>=1.15", "selenium>=4.11", "tqdm>=4.60",
                 "pyte>=0.8", "rich>=13", "click>=8", "colorama>=0.4",
                 # the deployment matrix's servers (tests/test_deploy.py); mod_wsgi compiles against apache2-dev
                 "waitress>=2.1", "flup>=1.0.3", "pyuwsgi>=2.0.21", "mod_wsgi>=4.9", "gevent>=22", "packaging>=21"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Internet :: WWW/HTTP :: WSGI",
        "License :: OSI Approved :: MIT License",
    ],
)
