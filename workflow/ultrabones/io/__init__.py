"""File I/O at the edges: the only package that reads or writes files.

Submodules: ``record`` (public record layout: poses table, images), ``calibration``
(``calibration.yaml``), ``stl`` (bone and fiducial meshes), ``png`` (8-bit frames),
``markers`` (Atracsys ``.ini`` geometries), ``tracker`` (optical tracker streams).
"""
